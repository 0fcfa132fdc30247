"""The head types of GPT-1's fine-tuning models, defined once.

`GPT1Classifier(head=...)`, the input layout of `GPT1ClassifierPreprocessor` and the
task datasets (`gpt1_keras.preprocessing.packing`, `gpt1_keras.data.task_dataset`),
and `TaskSpec.head` all take one of these.
"""

HEADS = ("classification", "entailment", "similarity", "multiple_choice")


def check_head(head):
    """Returns `head` if it is one of `HEADS`, else raises a `ValueError` naming it."""
    if head not in HEADS:
        raise ValueError(f"`head` must be one of {HEADS}. Received: head={head!r}")
    return head
