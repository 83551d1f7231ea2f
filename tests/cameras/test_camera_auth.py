"""Basic and Digest authentication of the probes, checked against RFC 7616's own example."""

from __future__ import annotations

import base64

import pytest

from thanthien.edge.cameras.auth import (
    AuthError,
    Authorizer,
    Challenge,
    Credentials,
    choose,
    parse_challenges,
)

# RFC 7616 section 3.9.1
RFC_CREDS = Credentials("Mufasa", "Circle of Life")
RFC_PARAMS = {
    "realm": "http-auth@example.org",
    "qop": "auth, auth-int",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
}
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def _params(header: str) -> dict[str, str]:
    [challenge] = parse_challenges([header])
    return challenge.params


def test_digest_md5_matches_rfc_7616_example():
    ch = Challenge("digest", {**RFC_PARAMS, "algorithm": "MD5"})
    header = Authorizer(ch, RFC_CREDS, cnonce=RFC_CNONCE).header("GET", "/dir/index.html")
    params = _params(header)
    assert params["response"] == "8ca523f5e9506fed4657c9700eebdbec"
    assert (params["qop"], params["nc"], params["opaque"]) == ("auth", "00000001", RFC_PARAMS["opaque"])


def test_digest_sha256_matches_rfc_7616_example():
    ch = Challenge("digest", {**RFC_PARAMS, "algorithm": "SHA-256"})
    header = Authorizer(ch, RFC_CREDS, cnonce=RFC_CNONCE).header("GET", "/dir/index.html")
    assert _params(header)["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def test_digest_nonce_count_increases_per_request():
    ch = Challenge("digest", {**RFC_PARAMS})
    auth = Authorizer(ch, RFC_CREDS)
    counts = [_params(auth.header("DESCRIBE", "rtsp://cam/1"))["nc"] for _ in range(3)]
    assert counts == ["00000001", "00000002", "00000003"]


def test_digest_without_qop_uses_rfc_2069_form():
    ch = Challenge("digest", {"realm": "cam", "nonce": "abc"})
    params = _params(Authorizer(ch, Credentials("u", "p")).header("DESCRIBE", "rtsp://h/x"))
    assert "qop" not in params and "nc" not in params and "cnonce" not in params
    assert len(params["response"]) == 32


def test_basic_header_encodes_user_and_password():
    auth = Authorizer(Challenge("basic", {"realm": "x"}), Credentials("admin", "mật khẩu"))
    header = auth.header("GET", "/")
    scheme, value = header.split(" ", 1)
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == "admin:mật khẩu"


def test_several_challenges_in_one_header_are_split():
    header = 'Digest realm="a, b", nonce="n1", qop="auth,auth-int", algorithm=SHA-256, Basic realm="a"'
    challenges = parse_challenges([header])
    assert [c.scheme for c in challenges] == ["digest", "basic"]
    assert challenges[0].params["realm"] == "a, b"
    assert challenges[0].qops() == ["auth", "auth-int"]


def test_strongest_supported_challenge_is_chosen():
    challenges = parse_challenges(['Basic realm="x"', 'Digest realm="x", nonce="1", algorithm=MD5',
                                   'Digest realm="x", nonce="2", algorithm=SHA-256'])
    chosen = choose(challenges)
    assert (chosen.scheme, chosen.algorithm) == ("digest", "SHA-256")


def test_unsupported_schemes_only_raise_a_clear_error():
    with pytest.raises(AuthError, match=r"no supported authentication scheme offered.*negotiate"):
        choose(parse_challenges(["Negotiate abc=="]))
