<?php
// pg_sleep through PDO, connected with what the pool passes (env[DATABASE_DSN], DATABASE_USER,
// DATABASE_PASSWORD): a statement cut by PostgreSQL answers 500 with its SQLSTATE.
header('Content-Type: application/json');
$start = microtime(true);
$out = ['settings' => [], 'sqlstate' => null];
try {
    $db = new PDO(getenv('DATABASE_DSN'), getenv('DATABASE_USER'), getenv('DATABASE_PASSWORD'),
                  [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    // source: "client" when the DSN's options set it, "database user" for ALTER ROLE ... IN DATABASE.
    $rows = $db->query("SELECT name, setting, unit, source FROM pg_settings WHERE name IN "
                       . "('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout')");
    foreach ($rows as $row) {
        $out['settings'][$row['name']] = ['ms' => (int)$row['setting'], 'source' => $row['source']];
    }
    $db->query('SELECT pg_sleep(' . (float)($_GET['s'] ?? 0) . ')');
} catch (PDOException $e) {
    http_response_code(500);
    $out['sqlstate'] = $e->getCode();
    $out['message'] = $e->getMessage();
}
$out['elapsed'] = microtime(true) - $start;
echo json_encode($out), "\n";
