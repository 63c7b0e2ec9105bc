"""sts-models: semantic textual similarity of sentence pairs as Hugging Face models.

Importing the package registers its configs and models with `AutoConfig` and `AutoModel`.
"""

# Ctrl-C while torch and transformers load ends a command (`sts-models ...`, `run_sts.py`) in one line, not in
# a traceback; a program importing sts_models as a library gets its KeyboardInterrupt
from .cli import command_prog as _command_prog
from .cli import interrupt_ends_command as _interrupt_ends_command

with _interrupt_ends_command(_command_prog()):
    from .architectures import ARCHITECTURES, get_model_class, register_auto_classes
    from .configuration import STSConfig, STSCrossAttentionConfig, STSRegressionConfig, STSSiameseConfig
    from .data_collator import DataCollatorForSentencePairs
    from .metrics import compute_metrics
    from .modeling_base import STSModelOutput, STSPreTrainedModel
    from .modeling_cross_attention import STSCrossAttentionModel
    from .modeling_regression import STSRegressionModel
    from .modeling_siamese import SiameseModelOutput, STSSiameseModel
    from .search_index import EmbeddingIndex
    from .training_args import tell_deepspeed_the_cpu

try:  # one version source: pyproject.toml, through the installed package's metadata
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    __version__ = _version("sts-models")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0+unknown"

register_auto_classes()
tell_deepspeed_the_cpu()  # DeepSpeed, where installed, would warn in `save_pretrained` on a machine without a GPU

__all__ = [
    "ARCHITECTURES",
    "DataCollatorForSentencePairs",
    "EmbeddingIndex",
    "STSConfig",
    "STSCrossAttentionConfig",
    "STSCrossAttentionModel",
    "STSModelOutput",
    "STSPreTrainedModel",
    "STSRegressionConfig",
    "STSRegressionModel",
    "STSSiameseConfig",
    "STSSiameseModel",
    "SiameseModelOutput",
    "compute_metrics",
    "get_model_class",
    "register_auto_classes",
]
