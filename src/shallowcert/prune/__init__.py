"""L1-norm filter pruning (Li et al. 2017): ranking, plans, structural surgery and search."""

from shallowcert.prune.histogram import plot_filter_norms
from shallowcert.prune.plan import RULES, PrunePlan, make_plan
from shallowcert.prune.ranking import conv_indices, filter_l1_norms, weakest_filters
from shallowcert.prune.report import pruning_report
from shallowcert.prune.search import SearchResult, search_pruning
from shallowcert.prune.surgery import remove_filters

__all__ = ["RULES", "PrunePlan", "SearchResult", "conv_indices", "filter_l1_norms", "make_plan",
           "plot_filter_norms", "pruning_report", "remove_filters", "search_pruning", "weakest_filters"]
