# (filled by its area)
