"""Let's Encrypt's HTTP-01 challenge, which every rendered port-80 server answers.

certbot's `--webroot` plugin writes a token under the webroot and the CA fetches it over
plain HTTP on port 80, for the first certificate and for every renewal. Serving the
challenge from one shared folder, ahead of the redirect to HTTPS, lets a site get its first
certificate before its `tls:` exists, and renew without stopping nginx.
"""

# The prefix the CA asks for; a site's own location of the same prefix would be a duplicate.
ACME_CHALLENGE = "/.well-known/acme-challenge/"
# Where `certbot certonly --webroot -w ACME_WEBROOT` writes (and nginx reads) the tokens: one
# folder for every site, outside any app's root, so no app can write another's challenge.
ACME_WEBROOT = "/var/www/_letsencrypt"
