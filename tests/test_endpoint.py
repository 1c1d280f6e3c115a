"""Addresses in one form: whether nginx's proxy_pass reaches gunicorn's bind."""

from __future__ import annotations

import pytest

from deploygen.audit.endpoint import from_bind, from_listen_stream, from_proxy_pass, from_upstream_server


@pytest.mark.parametrize(("target", "bind"), [
    ("http://127.0.0.1:8000", "127.0.0.1:8000"),
    ("http://localhost:8000/", "127.0.0.1:8000"),
    ("http://[::1]:8000", "localhost:8000"),
    ("http://127.0.0.1:8000", "0.0.0.0:8000"),  # a bind on every address takes loopback
    ("http://10.0.0.5:8000", "[::]:8000"),
    ("http://127.0.0.1:8000", ":8000"),
    ("http://unix:/run/shop/gunicorn.sock:/api/", "unix:/run/shop/gunicorn.sock"),
    ("http://unix:/run/shop//gunicorn.sock", "unix:/run/shop/gunicorn.sock"),
    ("http://127.0.0.1", "127.0.0.1:80"),  # nginx's default port for http
])
def test_reaches(target, bind):
    assert from_proxy_pass(target).reaches(from_bind(bind))


@pytest.mark.parametrize(("target", "bind"), [
    ("http://127.0.0.1:8001", "127.0.0.1:8000"),  # another port
    ("http://10.0.0.5:8000", "127.0.0.1:8000"),  # another host: a bind on loopback is not reached from it
    ("http://unix:/run/a.sock", "unix:/run/b.sock"),
    ("http://unix:/run/a.sock", "127.0.0.1:8000"),
    ("http://127.0.0.1:8000", "unix:/run/a.sock"),
])
def test_does_not_reach(target, bind):
    assert not from_proxy_pass(target).reaches(from_bind(bind))


def test_what_is_no_address():
    assert from_proxy_pass("http://$backend") is None  # a variable: per request
    assert from_proxy_pass("unix:/x.sock") is None  # no scheme: not a proxy_pass nginx takes
    assert from_bind("fd://3") is None
    assert from_bind("&anchor") is None and from_bind("a b:80") is None
    assert from_bind("unix:relative.sock") is None  # made absolute by its unit's folder first


def test_upstream_servers_and_socket_units():
    assert str(from_upstream_server("unix:/run/x.sock")) == "unix:/run/x.sock"
    assert str(from_upstream_server("app.internal")) == "app.internal:80"
    assert str(from_listen_stream("/run/x.sock")) == "unix:/run/x.sock"
    assert from_listen_stream("8000").reaches(from_listen_stream("8000"))
    assert from_proxy_pass("http://127.0.0.1:8000").reaches(from_listen_stream("[::]:8000"))
