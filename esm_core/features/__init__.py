"""Pipeline step 1, features: random untrained networks (``networks``), an exemplar's tensors
and features at a phase's scale (``exemplar``), 3x3 feature patches and exact patch search
(``patches``), resampling between scales (``resample``) and a hole's footprint on the feature
maps (``holes``)."""
