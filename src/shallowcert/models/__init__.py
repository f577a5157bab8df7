"""Architecture specs, parameter/FLOP counts and model directories."""

from shallowcert.models.checkpoint import ModelDir, load_model, save_model, update_metrics
from shallowcert.models.counting import LayerCost, count_macs, count_params, layer_costs
from shallowcert.models.layers import Normalize
from shallowcert.models.spec import FAMILIES, build, describe, expand

__all__ = [
    "FAMILIES", "LayerCost", "ModelDir", "Normalize", "build", "count_macs", "count_params",
    "describe", "expand", "layer_costs", "load_model", "save_model", "update_metrics",
]
