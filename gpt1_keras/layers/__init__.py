"""Keras layers that make up GPT-1 (backend-agnostic: `keras.ops` only)."""

from gpt1_keras.layers.auxiliary_lm_loss import AuxiliaryLMLoss
from gpt1_keras.layers.auxiliary_lm_loss import language_model_loss
from gpt1_keras.layers.causal_self_attention import CausalSelfAttention
from gpt1_keras.layers.chunked_cross_entropy import chunked_cross_entropy_sum
from gpt1_keras.layers.classify_token_pooler import ClassifyTokenPooler
from gpt1_keras.layers.flatten_sequences import FlattenSequences
from gpt1_keras.layers.gpt1_decoder_block import GPT1DecoderBlock
from gpt1_keras.layers.heads import HEADS
from gpt1_keras.layers.initializers import gpt1_initializer
from gpt1_keras.layers.next_token_log_probs import next_token_log_probs
from gpt1_keras.layers.position_embedding import PositionEmbedding
from gpt1_keras.layers.unflatten_sequences import UnflattenSequences
