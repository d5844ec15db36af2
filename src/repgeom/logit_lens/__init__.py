"""The logit lens over training: each layer decoded by the model's own LM head, per checkpoint
(computed in the extraction pass, :mod:`repgeom.activations.lens`)."""
