<?php
// Reads the session; writes it only for ?set=VALUE. A request without set leaves $_SESSION
// unchanged, so with lazy_write PHP does not write it (seed 002's publisher page).
session_start();
if (isset($_GET['set'])) {
    $_SESSION['v'] = (string)$_GET['set'];
}
header('Content-Type: application/json');
echo json_encode(['id' => session_id(), 'v' => $_SESSION['v'] ?? null]), "\n";
