<?php
// What the pool gave this request: ini_get() of each name in ?ini= (false: PHP has no such
// setting), getenv() of each name in ?env=, and whether ini_set() may change each name in ?set=.
header('Content-Type: application/json');
$names = fn($key) => array_filter(explode(',', $_GET[$key] ?? ''), 'strlen');
$out = ['ini' => [], 'env' => [], 'set' => []];
foreach ($names('ini') as $name) {
    $out['ini'][$name] = ini_get($name);
}
foreach ($names('env') as $name) {
    $out['env'][$name] = getenv($name);
}
foreach ($names('set') as $name) {
    $out['set'][$name] = ini_set($name, '12345') !== false;
}
echo json_encode($out), "\n";
