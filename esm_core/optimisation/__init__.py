"""Pipeline step 3, optimisation: the coarse-to-fine schedule (``multiscale``) and running its
phases (``phases``), L-BFGS-B on the pixels (``optimize``) and its batched form for several
images at once (``lockstep``)."""
