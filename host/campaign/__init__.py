"""Campaigns: sweeps over codecs × scopes × rates × trials, resumable, on any executor.

``make_spec`` validates a campaign, ``run_sweep`` runs or resumes it into a folder
(``campaign.json`` + ``results.jsonl``), ``find_robustness`` finds R(x) of one codec by
bisection without a grid. docs/campaigns.md describes usage, the results schema, resume
semantics, seeds, executors and the per-layer prefix reuse.
"""

from host.campaign.grid import CampaignSpec, Unit, parse_rates, parse_scopes, scope_selection
from host.campaign.robustness import RobustnessResult, RobustnessSettings, find_robustness
from host.campaign.split import GraphSplit, split_at_weights
from host.campaign.store import CAMPAIGN, RESULTS, ROW_KEYS, read_rows
from host.campaign.sweep import CampaignInterrupted, SweepResult, SweepSettings, make_spec, reference_run, run_sweep
from host.campaign.worker import CampaignJob, run_unit

__all__ = [
    "CAMPAIGN",
    "CampaignInterrupted",
    "CampaignJob",
    "CampaignSpec",
    "GraphSplit",
    "RESULTS",
    "ROW_KEYS",
    "RobustnessResult",
    "RobustnessSettings",
    "SweepResult",
    "SweepSettings",
    "Unit",
    "find_robustness",
    "make_spec",
    "parse_rates",
    "parse_scopes",
    "read_rows",
    "reference_run",
    "run_sweep",
    "run_unit",
    "scope_selection",
    "split_at_weights",
]
