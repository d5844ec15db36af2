""" "The Shape of Learning" (Razzhigaev et al., EACL 2024): its figures and tables."""
