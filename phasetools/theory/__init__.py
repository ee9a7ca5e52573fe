"""Exact theory of L2-regularised deep linear networks.

Symbolic model
    reduced_potential, closed_forms, compiled_potential (numeric U, U', U'' of the reduced
    potential), chain_potential, network_potential (sympy losses of the chain and the full
    network), SYMBOLS (the model's sympy symbols a, b, c, gamma, lam, n)
Networks
    layer_shapes, end_to_end (the end-to-end map of a list of weight matrices)
Conventions
    Convention, CANONICAL, PAPER, resolve_convention, gamma_from_weight_decay,
    weight_decay_from_gamma
One scalar mode
    critical_points -> CriticalPoints
    landscape -> Landscape (with HessianSpectrum objects)
Many features
    modes -> Modes (ModeState, ModeTransition), phase_diagram -> PhaseDiagram,
    nonaligned_critical_points -> NonalignedCriticalPoints
Finite samples
    empirical_modes -> EmpiricalModes, empirical_moments, MisalignmentWarning
Escape times
    kramers_time, mean_first_passage_time, mfpt_1d, eyring_kramers_time; mfpt_grid -> GridMFPT
    (the exact MFPT of a few-variable diffusion by finite volumes, e.g. the 3-weight chain)
SGD noise (per-sample gradient covariance of the linear network)
    residual_moments, gradient_noise_kernel, gradient_covariance_from_K,
    without_replacement_factor, noise_strength, effective_temperature; from the data's own
    fourth moments: sample_fourth_moments, gaussian_fourth_moments, data_noise_kernel
Predictions for trained networks (docs/predict.md)
    data_mode_noise, mode_noise -> ModeNoise; data_cross_noise -> CrossModeNoise;
    predict_sgd_escape, predict_injected_escape -> EscapePrediction;
    plateau_time -> PlateauPrediction

Every function takes ``convention=`` ("canonical" by default, or "paper"); in the paper
convention ``c`` is the feature strength ``eta`` and the coupling is the weight decay
``beta`` (``a = 1`` for whitened inputs).
"""

from ._convention import (CANONICAL, PAPER, Convention, gamma_from_weight_decay, resolve_convention,
                          weight_decay_from_gamma)
from ._critical import CriticalPoints, critical_points
from ._empirical import EmpiricalModes, MisalignmentWarning, RelaxedState, empirical_moments, empirical_modes
from ._escape import eyring_kramers_time, kramers_time, mean_first_passage_time, mfpt_1d
from ._landscape import HessianSpectrum, Landscape, landscape
from ._mfpt_grid import GridMFPT, mfpt_grid
from ._modes import ModeState, ModeTransition, Modes, PhaseDiagram, modes, phase_diagram
from ._nonaligned import NonalignedCriticalPoints, nonaligned_critical_points
from ._sgd import (data_noise_kernel, effective_temperature, gaussian_fourth_moments, gradient_covariance_from_K,
                   gradient_noise_kernel, noise_strength, residual_moments, sample_fourth_moments,
                   without_replacement_factor)
from ._network import end_to_end, layer_shapes
from ._predict import (CrossModeNoise, EscapePrediction, ModeNoise, PlateauPrediction, data_cross_noise,
                       data_mode_noise, log_first_passage_time, mode_noise, plateau_time, predict_injected_escape,
                       predict_sgd_escape)
from ._symbolic import (SYMBOLS, chain_potential, closed_forms, compiled_potential, network_potential,
                        reduced_potential)

__all__ = [
    "reduced_potential", "closed_forms", "compiled_potential", "chain_potential", "network_potential", "SYMBOLS",
    "layer_shapes", "end_to_end",
    "Convention", "CANONICAL", "PAPER", "resolve_convention", "gamma_from_weight_decay",
    "weight_decay_from_gamma",
    "CriticalPoints", "critical_points",
    "HessianSpectrum", "Landscape", "landscape",
    "ModeState", "ModeTransition", "Modes", "modes", "PhaseDiagram", "phase_diagram",
    "NonalignedCriticalPoints", "nonaligned_critical_points",
    "EmpiricalModes", "RelaxedState", "MisalignmentWarning", "empirical_modes", "empirical_moments",
    "kramers_time", "mean_first_passage_time", "mfpt_1d", "eyring_kramers_time", "mfpt_grid", "GridMFPT",
    "residual_moments", "gradient_noise_kernel", "gradient_covariance_from_K", "without_replacement_factor",
    "noise_strength", "effective_temperature", "data_noise_kernel", "sample_fourth_moments", "gaussian_fourth_moments",
    "ModeNoise", "mode_noise", "data_mode_noise", "CrossModeNoise", "data_cross_noise", "EscapePrediction", "predict_sgd_escape", "PlateauPrediction",
    "plateau_time", "predict_injected_escape", "log_first_passage_time",
]
