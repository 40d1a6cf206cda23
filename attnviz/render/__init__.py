"""Rendering: numpy attention to Plotly figures and PNG/SVG bytes (no torch, no streamlit)."""
from attnviz.render.colors import COLORSCALES, DEFAULT_COLORSCALE, colorize
from attnviz.render.figures import heatmap_figure, position_labels
from attnviz.render.graph import HeadGraph, graph_figure, graph_png, graph_svg, head_graph
from attnviz.render.raster import grid_image, head_image, labelled_heatmap, png_bytes

__all__ = ["COLORSCALES", "DEFAULT_COLORSCALE", "HeadGraph", "colorize", "graph_figure", "graph_png", "graph_svg",
           "grid_image", "head_graph", "head_image", "heatmap_figure", "labelled_heatmap", "png_bytes",
           "position_labels"]
