"""Thin Faust glue: consume, call the pure scoring in models/, emit."""
