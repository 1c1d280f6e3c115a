<?php
// The probe php-fpm runs during a drill of a PHP site: the Flask probe's endpoints, as the
// site's front controller (nginx's try_files sends every path to it; it routes on REQUEST_URI).
//
// It connects as the site's app would, with the DSN and user the rendered pool passes in
// env[DATABASE_DSN] and env[DATABASE_USER] (the pool's clear_env keeps everything else out),
// so PostgreSQL's limits come from the DSN's options as on the server. A PDO error comes
// back as 503 with its SQLSTATE (57014 for statement_timeout), so that the drill tells
// "PostgreSQL gave up" from "php-fpm ended the child" (502 without this body) and "nginx gave
// up" (504). Markers in DRILL_STATE_DIR tell whether a request is still running after the
// client was answered.

declare(strict_types=1);

function mark(string $what): void
{
    $tag = $_GET['id'] ?? '';
    $state = getenv('DRILL_STATE_DIR');
    if ($tag !== '' && $state !== false && preg_match('/^[A-Za-z0-9_-]+$/', $tag)) {
        file_put_contents("$state/$tag.$what", (string) getmypid());
    }
}

function answer(int $status, array $body): never
{
    mark('end');
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($body);
    exit;
}

function seconds(): float
{
    return (float) ($_GET['s'] ?? '0');
}

// Wall-clock work that a signal does not cut short: php-fpm's graceful stop sends the child
// SIGQUIT, which ends a plain sleep() early and would pass for a request that finished.
function work(float $seconds): void
{
    $deadline = hrtime(true) + (int) ($seconds * 1e9);
    while (($left = $deadline - hrtime(true)) > 0) {
        usleep((int) min($left / 1000, 50_000));
    }
}

function connect(): PDO
{
    $password = getenv('DATABASE_PASSWORD');
    return new PDO((string) getenv('DATABASE_DSN'), (string) getenv('DATABASE_USER'),
                   $password === false ? null : $password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
}

function app(): never
{
    answer(200, ['layer' => 'app', 'pid' => getmypid()]);
}

mark('start');
$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
try {
    switch ($path) {
        case '/sleep':
            work(seconds());
            app();
        case '/db-sleep':
            $db = connect();
            $db->beginTransaction();
            $db->prepare('SELECT pg_sleep(?)')->execute([seconds()]);
            $db->commit();
            app();
        case '/lock':
            $db = connect();
            $db->beginTransaction();
            $db->query('SELECT id FROM drill_lock WHERE id = 1 FOR UPDATE');
            $db->commit();
            app();
        case '/idle-tx':
            $db = connect();
            $db->beginTransaction();
            $db->query('SELECT 1');
            work(seconds());
            $db->query('SELECT 1');
            $db->commit();
            app();
        case '/session':
            session_start();
            if (!isset($_SESSION['n'])) {
                $_SESSION['n'] = getmypid();
            }
            $first = $_SESSION['n'];
            session_write_close();  // PHP locks the session file: without this, requests take turns
            work(seconds());
            answer(200, ['layer' => 'app', 'pid' => getmypid(), 'first_pid' => $first]);
        default:
            answer(404, ['layer' => 'app', 'error' => "no such endpoint: $path"]);
    }
} catch (PDOException $exc) {
    // errorInfo[0] is the SQLSTATE PostgreSQL sent; getCode() the same, or PDO's own when it sent none.
    $sqlstate = $exc->errorInfo[0] ?? $exc->getCode();
    answer(503, ['layer' => 'postgres', 'sqlstate' => (string) $sqlstate,
                 'error' => strtok($exc->getMessage(), "\n")]);
}
