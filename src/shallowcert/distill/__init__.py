"""Knowledge distillation: losses, cached teacher logits, and the student trainer."""

from shallowcert.distill.cache import teacher_logits, weights_fingerprint
from shallowcert.distill.losses import hinton_loss, logits_mse, soft_target_cross_entropy
from shallowcert.distill.methods import METHODS, DistillMethod
from shallowcert.distill.student import distill_student
from shallowcert.distill.transfer import TRANSFER_SETS, TransferSet, transfer_set

__all__ = ["METHODS", "TRANSFER_SETS", "DistillMethod", "TransferSet", "distill_student", "hinton_loss",
           "logits_mse", "soft_target_cross_entropy", "teacher_logits", "transfer_set", "weights_fingerprint"]
