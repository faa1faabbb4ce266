"""Plain-words explanations shown on the page: what regularization is, how to read it."""

from __future__ import annotations

import streamlit as st

WHAT_IS_REGULARIZATION = """
**Overfitting** is learning the training set by heart, noise and all, instead of the pattern
behind it. A model with room to spare (many weights, few points) can bend itself through
every training point; it then does worse on new points. **Underfitting** is the opposite: a
model too stiff to follow the pattern at all. Regularization trades a little fit on the
training set for a model that holds up on data it has not seen.

The lab has four families of it:
- **Penalties** add a cost for large weights. *L2* shrinks all weights a little every step
  (smooth boundaries); *L1* pushes useless weights to exactly zero (sparse nets, feature
  selection); *weight decay* under AdamW shrinks weights outside the optimizer's scaling.
- **Noise injection** makes memorising impossible: *dropout* silences random units,
  *stochastic depth* skips random blocks, *augmentation* shows shifted or jittered inputs,
  *label smoothing* asks for 95% confidence instead of 100%.
- **Early stopping** keeps the weights from the epoch where validation was best.
- **Data and capacity**: more training points, or a smaller net, leave less to memorise.
  *Batch norm* mainly speeds training up; its batch noise regularizes a little.

**Reading the charts.** Training loss (solid) is measured on the points the net learns
from; validation loss (dashed) on points it never sees. The shaded band between them is
the *gap*. While both fall, the net is learning. When validation turns upward while
training keeps falling, the net is overfitting: the gap widens. A good regularizer keeps
the gap narrow and the validation curve low. Purple dotted lines mark your live changes,
the green star the best validation epoch. The boundary (or fitted curve) shows the same
story in the data: a boundary that curls around single points is memorisation.

**Why a test set too.** Validation picks things: early stopping picks its epoch, a sweep
picks its best setting, and you pick the settings you keep. Whatever wins a pick looks a
little better on the set that picked it than it is. The *test loss* (shown when a run
pauses or ends) is measured on held-out points that nothing trained or chose on, so it is
the honest estimate of how the net does on new data.
"""


def regularization_primer() -> None:
    """A closed expander with the ideas in our own words."""
    with st.expander("What is regularization? How to read these charts",
                     icon=":material/school:"):
        st.markdown(WHAT_IS_REGULARIZATION)
