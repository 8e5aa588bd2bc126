"""The response stage's tracking tokens (HMAC-SHA256 from hashlib's precomputed key pads over
compiled twin; the figure is what a decision pays per winner).

    ./dev bench -k signing
"""

from __future__ import annotations

from adserver.formats.signing import Signer, ensure_keys


def test_token_signing(benchmark, tmp_path) -> None:
    signer = Signer(ensure_keys(str(tmp_path)))
    fields = [
        "0123456789abcdef0123456789abcdef",
        123,
        45,
        678,
        9,
        10,
        "div0",
        3_010_000,
        1,
        "u0000042",
        0,
        1,
        11,
        1,
        "https://shop.example/brands/acme",
        [40],
    ]
    benchmark.group = "token signing"
    token = benchmark(signer.sign, 1, fields)
    assert signer.verify(token)[0] == "ok"
