"""The packaged all-MiniLM-L6-v2: the real model, unit vectors, batching that changes nothing."""

from __future__ import annotations

import numpy as np

from rag.embeddings import MAX_MODEL_TOKENS, LangChainEmbeddings, OnnxMiniLM


def cosine(embedder: OnnxMiniLM, a: str, b: str) -> float:
    va, vb = embedder.embed([a, b])
    return float(va @ vb)


def test_it_is_the_real_model_related_sentences_score_far_above_unrelated(embedder: OnnxMiniLM) -> None:
    pairs = [
        (
            "The central bank raised interest rates to fight inflation.",
            "Borrowing costs went up as the Fed tightened policy.",
        ),
        (
            "A strong earthquake shook the coastal city overnight.",
            "Tremors damaged buildings near the shore during the night.",
        ),
        ("The striker scored twice in the cup final.", "She netted two goals to win the championship match."),
    ]
    for (a, b), (_, other) in zip(pairs, pairs[1:] + pairs[:1], strict=True):
        related, unrelated = cosine(embedder, a, b), cosine(embedder, a, other)
        assert related > 0.45, (a, b, related)
        assert unrelated < 0.2, (a, other, unrelated)
        assert related - unrelated > 0.35
    assert cosine(embedder, "Ukraine", "Ukraine") > 0.999


def test_vectors_are_unit_length_float32_with_384_dimensions(embedder: OnnxMiniLM) -> None:
    vectors = embedder.embed(["one", "a longer sentence with several words in it", "ünïcödé 東京 🙂", " "])
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_padding_to_the_longest_in_a_batch_changes_no_vector(embedder: OnnxMiniLM) -> None:
    texts = [
        "Hi.",
        "Markets fell on Monday.",
        "Russia welcomed India's independent position at the UN Security Council, its envoy said on Wednesday. " * 3,
        "word " * 240,  # near the model's window
        "Ferries resumed.",
    ]
    batched = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    assert np.abs(batched - alone).max() < 1e-4
    # Length-sorted batching must put every vector back in its input's row.
    assert np.abs(embedder.embed(texts[::-1])[::-1] - batched).max() < 1e-4


def test_small_batches_give_the_same_vectors(embedder: OnnxMiniLM) -> None:
    texts = [f"Report number {i}: the river rose {i * 3} centimetres overnight." for i in range(10)]
    small = OnnxMiniLM(batch_size=3)
    assert np.abs(small.embed(texts) - embedder.embed(texts)).max() < 1e-4


def test_token_counts_exclude_special_tokens_and_are_never_truncated(embedder: OnnxMiniLM) -> None:
    assert embedder.count_tokens(["hello world"]) == [2]
    assert embedder.count_tokens([]) == []
    assert embedder.count_tokens(["word " * 1000]) == [1000]  # the counter sees everything; the model reads 256
    # A text longer than the window embeds without error (the model reads its first 256 pieces).
    long, head = embedder.embed(["word " * 1000, "word " * (MAX_MODEL_TOKENS - 2)])
    assert float(long @ head) > 0.999


def test_langchain_interface(embedder: OnnxMiniLM) -> None:
    lc = LangChainEmbeddings(embedder)
    docs = lc.embed_documents(["a", "b"])
    assert len(docs) == 2 and len(docs[0]) == 384
    assert np.allclose(lc.embed_query("a"), docs[0], atol=1e-5)
