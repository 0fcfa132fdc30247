"""Keras layers that make up GPT-1 (backend-agnostic: `keras.ops` only)."""

from gpt1_keras.layers.causal_self_attention import CausalSelfAttention
from gpt1_keras.layers.gpt1_decoder_block import GPT1DecoderBlock
from gpt1_keras.layers.position_embedding import PositionEmbedding
