<?php
// Wall-clock sleep, resumed after signals: usleep() returns early when FPM signals the child
// (a reload's SIGQUIT), which would make a cut request look finished.
$seconds = (float)($_GET['s'] ?? 1);
$start = microtime(true);
while (($left = $start + $seconds - microtime(true)) > 0) {
    usleep((int)min($left * 1e6, 50000));
}
header('Content-Type: application/json');
echo json_encode(['slept' => microtime(true) - $start, 'pid' => getmypid()]), "\n";
