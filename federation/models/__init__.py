"""Detection models: frozen message encoders with an embedding cache, features, heads.

A conversation is scored one message at a time: each message is encoded on its own
(MiniLM or hashed n-grams), and a trainable head reads a window of consecutive message
embeddings with their speakers. Only the head trains and travels between nodes.
"""

from federation.models.cache import EmbeddingCache, default_cache_path, text_key
from federation.models.encoder import EncoderStats, MessageEncoder, MiniLMEncoder
from federation.models.features import Batch, FeatureSet, build_features
from federation.models.heads import AttentionWindowHead, NgramHead, MessageScoreHead
from federation.models.ngram import HashedNgramEncoder
from federation.models.spec import ModelSpec, build_encoder, build_head
from federation.models.weights import head_arrays, load_head_arrays, load_weights, save_weights
from federation.models.windows import conversation_scores, window_scores

__all__ = [
    "AttentionWindowHead",
    "Batch",
    "EmbeddingCache",
    "EncoderStats",
    "FeatureSet",
    "HashedNgramEncoder",
    "MessageEncoder",
    "MiniLMEncoder",
    "ModelSpec",
    "NgramHead",
    "MessageScoreHead",
    "build_encoder",
    "build_features",
    "build_head",
    "conversation_scores",
    "default_cache_path",
    "head_arrays",
    "load_head_arrays",
    "load_weights",
    "save_weights",
    "text_key",
    "window_scores",
]
