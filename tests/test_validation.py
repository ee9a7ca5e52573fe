"""Bad input: a ValueError that names the parameter and the allowed range."""

import numpy as np
import pytest

from phasetools.theory import critical_points, empirical_modes, landscape, nonaligned_critical_points


@pytest.mark.parametrize("n_layers", [1, 0, -3, 2.5, 3.0, "3", True, None])
def test_n_layers(n_layers):
    with pytest.raises(ValueError, match=r"n_layers must be an integer >= 2"):
        critical_points(n_layers, 1.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(a=0.0), r"a must be > 0"),
    (dict(a=-1.0), r"a must be > 0"),
    (dict(a=np.nan), r"a must be finite"),
    (dict(c=np.inf), r"c must be finite"),
    (dict(c="abc"), r"c must be a finite real"),
])
def test_scalar_parameters(kwargs, match):
    args = dict(n_layers=3, c=1.0, a=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        critical_points(**args)


def test_gamma_range_and_shapes():
    with pytest.raises(ValueError, match=r"gamma must be >= 0"):
        landscape(3, 1.0, -1e-9)
    with pytest.raises(ValueError, match=r"gamma must be finite"):
        landscape(3, 1.0, np.nan)
    with pytest.raises(ValueError, match=r"do not broadcast.*c \(3,\).*gamma \(2,\)"):
        landscape(3, [1.0, 2.0, 3.0], [0.1, 0.2])


def test_nonaligned_inputs():
    with pytest.raises(ValueError, match="square"):
        nonaligned_critical_points(3, np.ones((2, 3)), [1.0, 1.0])
    with pytest.raises(ValueError, match="positive definite"):
        nonaligned_critical_points(3, np.diag([1.0, -1.0]), [1.0, 1.0])
    with pytest.raises(ValueError, match="length 2"):
        nonaligned_critical_points(3, np.eye(2), [1.0, 1.0, 1.0])


def test_empirical_inputs():
    with pytest.raises(ValueError, match="same number of rows"):
        empirical_modes(3, np.ones((5, 2)), np.ones((4, 2)))


def test_messages_show_numpy_scalars_as_plain_numbers():
    """A value from an array is quoted as the user wrote it (0, not np.int64(0))."""
    from phasetools._validation import check_int, check_scalar
    with pytest.raises(ValueError, match=r"got 0$"):
        check_int(np.int64(0), "n_seeds", 1)
    with pytest.raises(ValueError, match=r"got nan$"):
        check_scalar(np.float64("nan"), "lr", positive=True)
