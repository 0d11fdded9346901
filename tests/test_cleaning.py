"""Cleaning: PII masking checked against the PII the simulator put in, and duplicate detection on
simulated texts and images. Pure functions, no services needed."""

import io
import pickle
import random

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH
from PIL import Image

from assets.cleaning.near_duplicates import (
    Duplicate,
    exact_duplicates,
    image_phash,
    minhash_signatures,
    near_hash_duplicates,
    near_image_duplicates,
    near_text_duplicates,
    shingle_hashes,
)
from assets.cleaning.pii import TOKENS, Finding, is_valid_resident_id, mask_pii, mask_texts
from simulator.media import make_jpg, make_png
from simulator.text_corpus import iter_text_items, make_text, resident_id_check_digit, valid_resident_id


def _corpus(seed: int, n_medical: int = 300, n_education: int = 200):
    rng = random.Random(seed)
    return [make_text(rng, "medical") for _ in range(n_medical)] + [
        make_text(rng, "education") for _ in range(n_education)
    ]


def _masked_by_hand(text: str, pii) -> str:
    """The text with each PII value replaced by its token, in order of appearance."""
    parts, position = [], 0
    for value, kind in ((p.value, p.kind) for p in pii):
        start = text.index(value, position)
        parts += (text[position:start], TOKENS[kind])
        position = start + len(value)
    return "".join(parts) + text[position:]


def _id_with_check(first17_prefix: str, check: str) -> str:
    """A valid resident ID starting with the given 14 characters whose check character is `check`."""
    for sequence in range(1000):
        first17 = f"{first17_prefix}{sequence:03d}"
        if resident_id_check_digit(first17) == check:
            return first17 + check
    raise AssertionError(f"no sequence number gives check character {check}")


# --- PII -----------------------------------------------------------------------------------------


def test_every_pii_of_the_simulated_corpus_is_masked_and_nothing_else_changes():
    """Resident IDs with a wrong check character too: a typo leaves the holder identifiable."""
    corpus = _corpus(seed=11)
    kinds = {p.kind for sample in corpus for p in sample.pii_spans if p.valid}
    invalid_ids = [p.value for sample in corpus for p in sample.pii_spans if not p.valid]
    assert kinds == {"name", "resident_id", "mobile", "landline", "email"}
    assert invalid_ids, "the corpus should hold some resident IDs with a wrong check character"
    for sample in corpus:
        result = mask_pii(sample.text)
        found = [(f.kind, sample.text[f.start : f.end]) for f in result.found]
        assert found == [(p.kind, p.value) for p in sample.pii_spans], sample.text
        assert result.text == _masked_by_hand(sample.text, sample.pii_spans)
        for pii in sample.pii_spans:
            assert pii.value not in result.text, (pii, result.text)
    texts = [sample.text for sample in corpus]
    assert mask_texts(texts) == [mask_pii(text).text for text in texts]


def test_check_character_agrees_with_the_simulator():
    rng = random.Random(3)
    for _ in range(2000):
        value = valid_resident_id(rng)
        assert is_valid_resident_id(value)
        wrong = "0123456789X".replace(value[17], "")[rng.randrange(10)]
        assert not is_valid_resident_id(value[:17] + wrong)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # an ID ending in X, upper and lower case
        (f"身份证号：{_id_with_check('11010519800101', 'X')}。", "身份证号：[身份证号]。"),
        (f"证件{_id_with_check('14020219751130', 'X').lower()}号", "证件[身份证号]号"),
        # inside a longer digit run it is not an ID; nor with an impossible birth date (Feb 31)
        (f"单号9{_id_with_check('11010519800101', '7')}", None),
        (f"单号{_id_with_check('11010519800101', '7')}5", None),
        (f"编号{_id_with_check('11010519800231', '3')}", None),
        # mobile numbers right next to Chinese characters, with a country code, and a too-long run
        ("请拨打13912345678联系家属", "请拨打[手机号]联系家属"),
        ("电话+8618612345678。", "电话[手机号]。"),
        ("流水号139123456789", None),
        ("流水号2139123456789", None),
        # landlines
        ("座机010-62345678转分机", "座机[座机]转分机"),
        ("办公室0352-5123456。", "办公室[座机]。"),
        ("编号010-123456789", None),
        # e-mail with dots and a plus tag, between Chinese characters
        ("邮箱zhang.san+note@mail.dtedu.cn或电话", "邮箱[邮箱]或电话"),
        ("发至wang.li_2@163.com。", "发至[邮箱]。"),
        # names where the text marks them; the marker stays
        ("患者王伟，男，45岁", "患者[姓名]，男，45岁"),
        ("姓名：欧阳娜 性别：女", "姓名：[姓名] 性别：女"),
        ("姓名:张子涵，", "姓名:[姓名]，"),
        ("紧急联系人李明，电话", "紧急联系人[姓名]，电话"),
        ("授课教师：陈晓东。", "授课教师：[姓名]。"),
        ("主讲刘欣怡老师。", "主讲[姓名]老师。"),
        ("赵敏老师高一数学课", "[姓名]老师高一数学课"),
        ("主治医生：孙海燕。", "主治医生：[姓名]。"),
        # words after a marker that are not names stay
        ("患者自诉胸痛，危急值已通知医生，", None),
        ("学生提问：老师，这道题为什么不能直接约分？", None),
    ],
)
def test_edge_cases(text, masked):
    assert mask_pii(text).text == (text if masked is None else masked)
    assert mask_texts([text]) == [mask_pii(text).text]


def test_findings_point_into_the_original_text():
    text = "患者王伟，电话13912345678，邮箱a.b@qq.com。"
    result = mask_pii(text)
    assert result.found == [Finding("name", 2, 4), Finding("mobile", 7, 18), Finding("email", 21, 31)]
    assert result.text == "患者[姓名]，电话[手机号]，邮箱[邮箱]。"


# --- duplicates ----------------------------------------------------------------------------------


def test_exact_duplicates_within_the_batch_and_against_the_catalog():
    rows = [
        ("c/d1/a", "h1"),
        ("c/d1/b", "h2"),
        ("c/d1/c", "h1"),  # same content as a
        ("c/d1/d", "h9"),  # already in the catalog
        ("c/d1/e", "h1"),  # a's content again: still points at a, not at c
        ("c/d1/e", "h2"),  # e's second file also duplicates: e is reported once
        ("c/d1/f", "h3"),
        ("c/d1/f", "h3"),  # an item's two identical files do not make it its own duplicate
    ]
    assert exact_duplicates(rows, known={"h9": "c/d0/x"}) == [
        Duplicate("c/d1/c", "c/d1/a", "exact", 1.0),
        Duplicate("c/d1/d", "c/d0/x", "exact", 1.0),
        Duplicate("c/d1/e", "c/d1/a", "exact", 1.0),
    ]
    assert exact_duplicates(rows[:2]) == []


def _shingles(text: str, k: int = 3) -> set[str]:
    return {text[i : i + k] for i in range(len(text) - k + 1)}


def _edited(text: str, rng: random.Random, changes: int) -> str:
    """The text with `changes` characters, spread apart, replaced by a character it does not contain."""
    chars = list(text)
    for position in rng.sample(range(5, len(text) - 5, 20), changes):
        chars[position] = next(c for c in "鑫淼犇骉焱垚" if c not in text)
    return "".join(chars)


def test_texts_one_or_two_characters_apart_are_near_duplicates_and_others_are_not():
    rng = random.Random(5)
    originals = [t for t in (make_text(rng, "education").text for _ in range(200)) if len(t) >= 100][:60]
    edited = [_edited(text, rng, 1 + i % 2) for i, text in enumerate(originals)]
    items = [(f"o{i}", t) for i, t in enumerate(originals)] + [(f"e{i}", t) for i, t in enumerate(edited)]
    duplicates = near_text_duplicates(items, threshold=0.8)
    assert [(d.item_key, d.duplicate_of, d.kind) for d in duplicates] == [
        (f"e{i}", f"o{i}", "near_text") for i in range(len(originals))
    ]
    for d, original, copy in zip(duplicates, originals, edited, strict=True):
        a, b = _shingles(original), _shingles(copy)
        assert d.similarity == pytest.approx(len(a & b) / len(a | b))
        assert 0.8 <= d.similarity < 1
    # unrelated texts of another industry: nothing
    others = [(f"x{i}", make_text(rng, "medical").text) for i in range(60)]
    assert near_text_duplicates(items[: len(originals)] + others) == []


def test_signatures_are_datasketch_minhashes_of_the_shingles():
    texts = [item.text for item in iter_text_items(1, "medical", 20)] + ["短", ""]
    hashes, bounds = shingle_hashes(texts)
    signatures = minhash_signatures(hashes, bounds)
    for i, text in enumerate(texts):
        shingles = hashes[bounds[i] : bounds[i + 1]].tolist()
        assert len(set(shingles)) == len(_shingles(text))
        reference = MinHash(num_perm=128, seed=1, hashfunc=int)
        reference.update_batch(shingles)
        assert np.array_equal(reference.hashvalues, signatures[i])


def _near_text_duplicates_with_datasketch_lsh(items, threshold=0.8):
    """The reference: the same decision with datasketch's own LSH index, one insert/query per text."""
    hashes, bounds = shingle_hashes([text for _, text in items])
    signatures = minhash_signatures(hashes, bounds)
    lsh = MinHashLSH(threshold=threshold, num_perm=128, weights=(0.05, 0.95))
    found = []
    for i, (key, _) in enumerate(items):
        minhash = LeanMinHash(seed=1, hashvalues=signatures[i], scheme="affine32")
        shingles = set(hashes[bounds[i] : bounds[i + 1]].tolist())
        scored = []
        for j in lsh.query(minhash):
            other = set(hashes[bounds[j] : bounds[j + 1]].tolist())
            scored.append((len(shingles & other) / len(shingles | other), -j))
        if scored and max(scored)[0] >= threshold:
            found.append((key, items[-max(scored)[1]][0]))
        else:
            lsh.insert(i, minhash)
    return found


def test_band_bucketing_finds_what_datasketch_lsh_finds_on_templated_notes():
    rng = random.Random(11)
    texts = [item.text for item in iter_text_items(3, "medical", 400)]
    for i in range(1, len(texts)):
        if rng.random() < 0.2:  # a near copy of an earlier note: one to three characters changed
            chars = list(texts[rng.randrange(i)])
            for _ in range(rng.randint(1, 3)):
                chars[rng.randrange(len(chars))] = rng.choice("的了是在有和一")
            texts[i] = "".join(chars)
    items = [(f"t{i:03d}", text) for i, text in enumerate(texts)]
    expected = _near_text_duplicates_with_datasketch_lsh(items)
    assert len(expected) >= 40
    assert [(d.item_key, d.duplicate_of) for d in near_text_duplicates(items)] == expected


def _as_jpeg(png: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def test_a_picture_re_encoded_as_jpeg_is_a_near_duplicate_and_other_pictures_are_not():
    rng = random.Random(9)
    labels = ["crack", "spalling"]
    png, _ = make_png(rng, labels)
    others = [make_png(rng, labels)[0] for _ in range(20)] + [make_jpg(rng, labels)[0] for _ in range(20)]
    items = (
        [("png", png)] + [(f"other{i}", data) for i, data in enumerate(others)] + [("jpeg", _as_jpeg(png))]
    )
    [duplicate] = near_image_duplicates(items)
    assert duplicate.item_key == "jpeg" and duplicate.duplicate_of == "png"
    assert duplicate.kind == "near_image" and duplicate.similarity >= 1 - 6 / 64
    # hashed where the files are read, compared elsewhere: the same answer
    hashes = [(key, image_phash(data)) for key, data in items]
    assert all(len(image_hash) == 8 for _, image_hash in hashes)
    assert near_hash_duplicates(hashes) == [duplicate]
    assert near_hash_duplicates([]) == near_image_duplicates([]) == []


def test_results_and_functions_survive_pickling_for_dask():
    shipped = (
        mask_texts,
        mask_pii,
        mask_pii("患者王伟，"),
        image_phash,
        near_text_duplicates,
        Duplicate("a", "b", "exact", 1.0),
    )
    assert pickle.loads(pickle.dumps(shipped)) == shipped
