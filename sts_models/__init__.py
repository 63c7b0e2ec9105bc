"""sts-models: semantic textual similarity of sentence pairs as Hugging Face models.

Importing the package registers its configs and models with `AutoConfig` and `AutoModel`.
"""

from .architectures import ARCHITECTURES, get_model_class, register_auto_classes
from .configuration import STSConfig, STSCrossAttentionConfig, STSRegressionConfig, STSSiameseConfig
from .data_collator import DataCollatorForSentencePairs
from .metrics import compute_metrics
from .modeling_base import STSModelOutput, STSPreTrainedModel
from .modeling_cross_attention import STSCrossAttentionModel
from .modeling_regression import STSRegressionModel
from .modeling_siamese import SiameseModelOutput, STSSiameseModel
from .search_index import EmbeddingIndex

__version__ = "0.1.0"

register_auto_classes()

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
