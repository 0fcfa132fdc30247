"""GPT-1 tokenizer: in-graph BPE (`GPT1Tokenizer`) and vocabulary training (`train_bpe`)."""

from gpt1_keras.tokenizers.bpe_trainer import train_bpe
from gpt1_keras.tokenizers.gpt1_tokenizer import GPT1Tokenizer
from gpt1_keras.tokenizers.normalization import fix_text
