"""The sha256 of every file of the predictors shipped with this version of weightwatch.

Generated from ``pretrained/`` by ``python -m weightwatch.predictors._shipped_hashes [PRETRAINED_DIR]``;
run it again whenever a shipped predictor is rebuilt (``tests/test_faults_round2.py`` checks the table
against ``pretrained/``). :func:`weightwatch.predictors.load_predictor` compares a shipped predictor's
files with this table, so a file swapped together with its manifest and seal is refused; and a LightGBM
file whose sha256 is in the table is known to parse, so it skips the checks an unknown file gets.
"""

from __future__ import annotations

#: {"<predictor>/<file>": sha256}
HASHES = {
    'agnostic-W_L-agnostic-gbm/manifest.json': '1eb1cb454b6f43accd8aa203c15505bd3a34f165b78ae87e5ac64ba58d3c9307',
    'agnostic-W_L-agnostic-gbm/manifest.sha256': '5630c7cc9121d22aa5e53696f5a523bede1b9bfd3643a7ca9a0664aaf7640aa3',
    'agnostic-W_L-agnostic-gbm/model.txt': '9975733cc7ca31427cb1884114054e42de9a83ec4c2daa27b6a596c6aead3099',
    'agnostic-W_L-agnostic-gbm/model_q_hi.txt': 'ae6d4a34dde81c19a92d7b4ef7ec008d1b02bef6659280208b2877ccd66ff7e2',
    'agnostic-W_L-agnostic-gbm/model_q_lo.txt': 'bf9afac5c0f0b1f894626efe616ba0c0974ec45b1cd7046c3d6a22874cfec93f',
    'cnn-bn-W_L-agnostic-gbm/manifest.json': '2d9623e6f9d42cd26ab98b6a90e516466240826c9bcb9157251b50794ed99b6c',
    'cnn-bn-W_L-agnostic-gbm/manifest.sha256': 'c21eea18a05ca8c91cc761a18dabcdbe378cea0c520b42ed2cb1074c8f565d0d',
    'cnn-bn-W_L-agnostic-gbm/model.txt': 'b89b0b750fe5e3fe3ddebd771db2d6b22cc52df57ced6cfa4ecef1a79315fdcd',
    'cnn-bn-W_L-agnostic-gbm/model_q_hi.txt': '5e06f92b656469efc1561516c25facb8a1a644ab1472f33d56667c1f854099ec',
    'cnn-bn-W_L-agnostic-gbm/model_q_lo.txt': '4e5f5c54a5ed00e66f6bc8b687cf221ee08ab30506cfdaaeb97fe14532116ba6',
    'mlp-W_L-agnostic-gbm/manifest.json': '22cf1a06703f232105e4b9967fb84852b5cb33c9d5754b1397011defc61262ce',
    'mlp-W_L-agnostic-gbm/manifest.sha256': '1386532d16565476c22499adb2a81d25411ab2c3ee4c1e28619512f36e5b53b8',
    'mlp-W_L-agnostic-gbm/model.txt': '2ec07f6acb182538896de046bc0fb998a952a0751442ff97be0add47739e9e55',
    'mlp-W_L-agnostic-gbm/model_q_hi.txt': '483b2b47beac9febde355ab40dfa6828f927b063c6b3e1270bf6fe9471396c23',
    'mlp-W_L-agnostic-gbm/model_q_lo.txt': '6f4361c0f8d101d6354d5a0b466b04d6db145d62e884aad64ff43d33237e6eff',
    'paper-cnn-digits-W_L-gbm/manifest.json': '4fbe36bfa4afffed82c833574c18d5f1663f84a32ef47c5b214bb5b91f489c0b',
    'paper-cnn-digits-W_L-gbm/manifest.sha256': '11b674f64bd74e733fc26f3db31371a0acbc6e23ed522e1035e3945b1c08b630',
    'paper-cnn-digits-W_L-gbm/model.txt': '37d2d900b57ef7634f28dbbdbf25e6fd60e3f01f42e6cd5610c394c49e1f0f45',
    'paper-cnn-digits-W_L-gbm/model_q_hi.txt': 'f08d63568844d7d76de6455b734478f0da5990de202ae6f4537a14176ae5e04e',
    'paper-cnn-digits-W_L-gbm/model_q_lo.txt': '8c8f02ffe22743d5afb1c4e6f6415ea7d944ccc20a532c4ceee5cac00faf0be5',
    'paper-cnn-digits_jitter-W_L-gbm/manifest.json': '151a01fda873a0fe6cf027acbcff9e7bf30f825dce32ba2c48412d740a121891',
    'paper-cnn-digits_jitter-W_L-gbm/manifest.sha256': '2be02d426a45f22b795a65fb17402d1b4bbdf50f3453fc0a8076c014cc579c55',
    'paper-cnn-digits_jitter-W_L-gbm/model.txt': '92932b777825acc4362107c14fc3485ecca1371abfe633ca71c3e24ac1307d5e',
    'paper-cnn-digits_jitter-W_L-gbm/model_q_hi.txt': 'ae6f9f9aa1702e750f7beceeff51555a469f0ecef424a98ed4648bdc5d595f09',
    'paper-cnn-digits_jitter-W_L-gbm/model_q_lo.txt': 'd1bd0b0a11da673de40503c8c293525373c2997ab887ff404ff5385692460a26',
    'paper-cnn-early-doom-gbm/manifest.json': 'c1ea516951c163fab7ad9090a0f538310c270a535e05b7c3d7e61cc619f506b8',
    'paper-cnn-early-doom-gbm/manifest.sha256': '81880a106ac89dce0ed8f6da3325e098423dc8172da163e0fae36a420ac139c4',
    'paper-cnn-early-doom-gbm/model.txt': '7252f4e0149dcb552ee8a8310e4873c60c8cb82a90f4954e386376669022b529',
    'paper-cnn-early-forecast-gbm/manifest.json': '6b4bfa1c8bfc600b1cb7b2e4a4599114245652be55a84058df1cb557734a4187',
    'paper-cnn-early-forecast-gbm/manifest.sha256': '2a385e0d7992e8470aefd6e284a55d831dd7926240da3967cc131f20128c4cbe',
    'paper-cnn-early-forecast-gbm/model.txt': 'dba79ff211dd512b5c7f79ec006f6d3bfacc4d5dba1b13fd76c52574e76f2cef',
    'paper-cnn-early-forecast-gbm/model_q_hi.txt': '747be1c5473d7a40e09dfa38c0672c2cd6ab5f65357474e434d8e358ff917a90',
    'paper-cnn-early-forecast-gbm/model_q_lo.txt': '43eea7b1a20909b4ac5980ca2b31b1f5e729ae520e8493a219be000577c6e1b5',
    'paper-cnn-mnist5k-W_L-gbm/manifest.json': '45c6ca7bc081ff608c9ea5fcf704a6539f47c41da5f399d2f6c1a71f9612f2cf',
    'paper-cnn-mnist5k-W_L-gbm/manifest.sha256': 'fd90b89e94e9ad4f5cf5df420d7ad0788078f1fcdd06b29ba3df3fe30e673b28',
    'paper-cnn-mnist5k-W_L-gbm/model.txt': '552f5f50758e7d4c7a538d2460bd30fb6ff35144a2f1aec04a4cc04c637a78db',
    'paper-cnn-mnist5k-W_L-gbm/model_q_hi.txt': '78d8f9dee277445ee74c37634ead487280de7533c0eaad56d5f1b56e7cfa2c9f',
    'paper-cnn-mnist5k-W_L-gbm/model_q_lo.txt': 'adbb7ebbf9c430c59350e170dd3f6fd8cef38be364655d78a13d5882b843ad87',
    'paper-cnn-pooled-W_L-gbm/manifest.json': 'eb98b3d8e5f26a57b88e30aa696747ad20fc7bc8bf37fff163ccb757aaf976f7',
    'paper-cnn-pooled-W_L-gbm/manifest.sha256': '0548ec08a5ca059b6d4258a4092d0390aace5e18bec71e1553d7a73f522a48cf',
    'paper-cnn-pooled-W_L-gbm/model.txt': '0493bdaaefc042fb7e6b6ec6025833cd109337c2dc2fc6798985073af762fcae',
    'paper-cnn-pooled-W_L-gbm/model_q_hi.txt': '75d5a314c1826d4d42a40650367f42af83073efc17c0c3d187958c2d7e94dc5e',
    'paper-cnn-pooled-W_L-gbm/model_q_lo.txt': '3a882991bb1214ad034c74eda7a77e13d79086baacd6e2aa1d033ab62c3e8fff',
    'paper-cnn-shapes-W_L-gbm/manifest.json': 'aacada783d0cd8fc069e14ac009aae56d955750979e32ad544c936aa45c83925',
    'paper-cnn-shapes-W_L-gbm/manifest.sha256': '6ddfaf5469a3f78744163368a962ff45586f2814f31d7eab28219f2a3d2fdce2',
    'paper-cnn-shapes-W_L-gbm/model.txt': 'c5077d2eeb535f624bdad127cd62c2cc1078bed82c1f7f2da8946f04c35c1b4e',
    'paper-cnn-shapes-W_L-gbm/model_q_hi.txt': '04838234ffe776bd9cb21ca8f285fcec93fee3cfd137a67d62b1769d96c0a1f9',
    'paper-cnn-shapes-W_L-gbm/model_q_lo.txt': '3fcb897941f969735d3aabef9f9709b75f5a9675f437d8253b77cca7af3f9c90',
    'paper-cnn-textures-W_L-gbm/manifest.json': '4d41b0e8b81acbf74019a29fce4df1a4e081c2bf101f1e52426aff6ab4aacfae',
    'paper-cnn-textures-W_L-gbm/manifest.sha256': '0b28f17c378be04c05a1ab79e580bfbb46fe4ee5b259b880b0d90180c50ce044',
    'paper-cnn-textures-W_L-gbm/model.txt': 'c1dcc0d3a6011470f9b4f5e247a0da217ce39c65a50977fe57255777f6a632f9',
    'paper-cnn-textures-W_L-gbm/model_q_hi.txt': '1a9464b65ef2e3c66d024b99e85b6dd351f2899bc68b8afadb8fded05f098aed',
    'paper-cnn-textures-W_L-gbm/model_q_lo.txt': '596974fba6a7948a39f50bb172c9c6dbe68494c7ea010a0135ae9bed5861ffc6',
    'plain-doom-gbm/manifest.json': '3395670d3f8a1f4dd0bd9afc3d7b134f41c4388d991282202881d52d69c64ccf',
    'plain-doom-gbm/manifest.sha256': '31f66d01de121e4f49f866d5728b6f6775e4551768a872a7d84500691562e096',
    'plain-doom-gbm/model.txt': 'c09420a80db72989ba7a732be68d1767f544b6a6b07aef2c0a1eccd842337e6b',
    'plain-forecast-gbm/manifest.json': 'e413f6bb14b3b6548b91b8839aecc5e2304bbdbb74513437bef0ef5371e7a290',
    'plain-forecast-gbm/manifest.sha256': 'b9435a7b2ff23db0db8bb9d3e9ef2c87b0a6cda33357bcf032d4199cc906ccdf',
    'plain-forecast-gbm/model.txt': '07a13a14a7904171a159e6d6fa28d52157a4f04488ee8682dfc2bad050c62619',
    'plain-forecast-gbm/model_q_hi.txt': '2ed68387bca60318ec02bc7d726ac390744b74eb06fcc20eb294c19019464e84',
    'plain-forecast-gbm/model_q_lo.txt': '28f6496341c99821dc053f6912eca8387389456f5c5612cd8c7acb1d1ff09efd',
}


def table(pretrained_dir) -> dict:
    """``{"<predictor>/<file>": sha256}`` of every file of every predictor (a folder with a manifest.json)."""
    from pathlib import Path

    from .._files import sha256_file

    root = Path(pretrained_dir)
    return {f"{d.name}/{f.name}": sha256_file(f)
            for d in sorted(root.iterdir()) if (d / "manifest.json").is_file()
            for f in sorted(d.iterdir()) if f.is_file() and not f.name.startswith(".")}


def main(argv=None) -> int:
    """Rewrite this module's table from a pretrained directory (default: the source tree's ``pretrained/``)."""
    import re
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    here = Path(__file__)
    root = Path(args[0]) if args else here.resolve().parents[2] / "pretrained"
    body = "".join(f"    {k!r}: {v!r},\n" for k, v in table(root).items())
    text = re.sub(r"(?s)HASHES = \{\n.*?\n?\}\n", lambda _: "HASHES = {\n" + body + "}\n", here.read_text(), count=1)
    here.write_text(text)
    print(f"{here}: {len(body.splitlines())} files of {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
