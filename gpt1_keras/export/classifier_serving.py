"""`ClassifierServingModule`: a `GPT1Classifier` and its input transform as signatures.

TensorFlow-only module (the model runs on the Keras TensorFlow backend). The
signatures take raw strings; the classifier's own `GPT1ClassifierPreprocessor`
(tokenization and GPT-1's input transform for its head: special tokens, longest-first
truncation, padding) and the model run in one graph. See `docs/serving.md`.
"""

import tensorflow as tf

from gpt1_keras.export.serving_utils import Untracked
from gpt1_keras.export.serving_utils import same_batch_check
from gpt1_keras.export.serving_utils import signature_function
from gpt1_keras.export.serving_utils import tokenizer_resources


class ClassifierServingModule(tf.Module):
    """The `serving_default` signature of a fine-tuned classifier (and one more for
    multiple choice with a question).

    | `head` | inputs (string) | outputs |
    | --- | --- | --- |
    | `"classification"` | `text [B]` | `probabilities [B, C]`, `label [B]`, `label_name [B]` |
    | `"entailment"`, `"similarity"` | `text [B]`, `text_b [B]` | the same, or `score [B]` for regression |
    | `"multiple_choice"` | `text [B]` (context), `choices [B, K]` | `probabilities [B, K]` (softmax over choices), `label [B]`, `label_name [B]` |

    Multiple choice also gets a `with_question` signature taking `text`,
    `question [B]` and `choices` (RACE's layout: the question is written after
    the context and trimmed as its own segment).

    `label` is the int64 argmax; `label_name` is present when `label_names` are
    given (for multiple choice, a choice index past the names is written as its
    number). Multiple choice needs at least one choice per example.
    Every text is trimmed longest-first to fit `sequence_length` with its
    special tokens (`task_dataset`); an empty text contributes no tokens. The
    model then runs on the batch's longest sequence, not all `sequence_length`
    positions (the same outputs: attention is causal).

    Args:
        classifier: a built `GPT1Classifier`.
        preprocessor: the `GPT1ClassifierPreprocessor` that turns the strings
            into the model's inputs; default: the classifier's own. Its
            `sequence_length` (at most the backbone's `max_sequence_length`)
            and `label_names` are the export's.
        label_names: optional class names (one per class), or multiple-choice
            answer names; default: the preprocessor's `label_names`.
    """

    def __init__(self, classifier, preprocessor=None, label_names=None):
        super().__init__(name="gpt1_classifier_serving")
        preprocessor = preprocessor or classifier.preprocessor
        if preprocessor is None:
            raise ValueError(
                "The classifier has no preprocessor: attach a GPT1ClassifierPreprocessor "
                "(what fine-tuning saves in model.keras) or pass `preprocessor`.")
        head = classifier.head
        if preprocessor.head != head:
            raise ValueError(
                f"The preprocessor lays inputs out for head={preprocessor.head!r}, the "
                f"classifier has head={head!r}.")
        sequence_length = preprocessor.sequence_length
        context = classifier.backbone.max_sequence_length
        if not isinstance(sequence_length, int) or not 3 <= sequence_length <= context:
            raise ValueError(
                f"`sequence_length` must be an int in [3, {context}] (the backbone's "
                f"max_sequence_length). Received: sequence_length={sequence_length!r}")
        regression = classifier.num_classes == 1
        if label_names is None:
            label_names = preprocessor.label_names
        if label_names is not None:
            label_names = [str(n) for n in label_names]
            if regression:
                raise ValueError(
                    "A regression model (num_classes=1) has no label names. Received: "
                    f"label_names={label_names}")
            if head != "multiple_choice" and len(label_names) != classifier.num_classes:
                raise ValueError(
                    f"`label_names` needs one name per class ({classifier.num_classes}). "
                    f"Received {len(label_names)}: {label_names}")
        self.model_variables = list(classifier.variables)
        self.tokenizer_resources = tokenizer_resources(preprocessor.tokenizer)
        self._keras = Untracked(model=classifier, preprocessor=preprocessor)
        self.head = head
        self.regression = regression
        self.sequence_length = sequence_length
        self.label_names = label_names

    def signatures(self):
        """`{name: concrete function}` for `tf.saved_model.save`.

        Only the signatures are saved (the functions are not module attributes):
        saving each graph once keeps the export fast and the SavedModel small.
        """
        text = tf.TensorSpec([None], tf.string, "text")
        if self.head == "classification":
            serve = signature_function(self._classify, [text])
        elif self.head in ("entailment", "similarity"):
            serve = signature_function(
                self._pair, [text, tf.TensorSpec([None], tf.string, "text_b")])
        else:
            choices = tf.TensorSpec([None, None], tf.string, "choices")
            serve = signature_function(self._choose, [text, choices])
            with_question = signature_function(
                self._choose_with_question,
                [text, tf.TensorSpec([None], tf.string, "question"), choices])
            return {"serving_default": serve.get_concrete_function(),
                    "with_question": with_question.get_concrete_function()}
        return {"serving_default": serve.get_concrete_function()}

    def warmup_requests(self):
        """`[(signature, {input: values})]`: a realistic request for every
        signature, for TF Serving's warm-up records (`serving_utils`)."""
        text = ["A man is sleeping on the couch.", "The dog runs after the ball."]
        if self.head == "classification":
            return [("serving_default", {"text": text})]
        if self.head in ("entailment", "similarity"):
            return [("serving_default",
                     {"text": text, "text_b": ["A person rests.", "A cat sleeps."]})]
        choices = [["He wakes up.", "He flies away."], ["It barks.", "It melts."]]
        return [("serving_default", {"text": text, "choices": choices}),
                ("with_question", {"text": text, "question": ["What next?", "What then?"],
                                   "choices": choices})]

    # === Signature bodies ===

    def _classify(self, text):
        return self._predict(text)

    def _pair(self, text, text_b):
        with tf.control_dependencies([same_batch_check(text, text_b, "text", "text_b")]):
            return self._predict(text, text_b)

    def _choose(self, text, choices):
        checks = [same_batch_check(text, choices, "text", "choices"),
                  _some_choices_check(choices)]
        with tf.control_dependencies(checks):
            return self._predict(text, choices)

    def _choose_with_question(self, text, question, choices):
        checks = [same_batch_check(text, choices, "text", "choices"),
                  same_batch_check(text, question, "text", "question"),
                  _some_choices_check(choices)]
        with tf.control_dependencies(checks):
            return self._predict(text, choices, question)

    # === The graph ===

    def _predict(self, text, text_b=None, question=None):
        fields = [text] + ([question] if question is not None else []) + (
            [text_b] if text_b is not None else [])
        x = self._keras.preprocessor(tuple(fields) if len(fields) > 1 else text)
        # (..., T) -> (..., W): cut the padding past the batch's longest sequence.
        # Outputs are unchanged (causal attention; the head reads the classify
        # token), and a batch of short texts costs W positions, not T.
        lengths = tf.reduce_sum(tf.cast(x["padding_mask"], tf.int32), axis=-1)
        width = tf.maximum(tf.reduce_max(tf.reshape(lengths, [-1])), 1)  # >= 1, empty batch too
        x = {k: v[..., :width] for k, v in x.items()}
        outputs = tf.cast(self._keras.model(x, training=False), tf.float32)
        if self.regression:
            return {"score": outputs}
        probabilities = tf.nn.softmax(outputs, axis=-1)
        label = tf.argmax(probabilities, axis=-1)
        result = {"probabilities": probabilities, "label": label}
        if self.label_names is not None:
            result["label_name"] = self._names(label)
        return result

    def _names(self, label):
        names = tf.constant(self.label_names)
        known = (label >= 0) & (label < len(self.label_names))
        return tf.where(
            known,
            tf.gather(names, tf.clip_by_value(label, 0, len(self.label_names) - 1)),
            tf.strings.as_string(label),
        )


def _some_choices_check(choices):
    return tf.debugging.Assert(
        tf.shape(choices)[1] > 0,
        ["`choices` needs at least one choice per example. Received shape:",
         tf.shape(choices)],
    )
