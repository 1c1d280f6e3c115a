"""`deploygen ansible FLEET -o DIR`: a fleet as a plain Ansible project.

    DIR/inventory.yml        every host (ansible_host, its vars) and the variables that change where and how
    DIR/site.yml             the deploy: accounts, folders, files (validated, backed up), secrets check,
                             PostgreSQL, the sites-enabled link, then the handlers in order
    DIR/rollback.yml         puts back what the last deploy replaced, byte for byte
    DIR/handlers.yml         the handlers both playbooks run
    DIR/host_vars/HOST.yml   what site.yml installs on HOST: its files, sites, accounts, databases
    DIR/files/HOST/...       the rendered files, at their paths on the server
    DIR/.deploygen.json      what deploygen wrote (the next run replaces DIR only when it is this)

Modules: `yaml_text` writes every YAML file (user-derived strings are `!unsafe`), `inventory`
and `host_data` build the data, `postgres` the SQL site.yml runs, `project` puts it together,
`output` writes DIR atomically. The playbooks are the same for every fleet (`playbooks/`).
"""
