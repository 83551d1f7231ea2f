"""Remote updates of the edge agent on the node: releases side by side, an atomic switch, a
health window and rolling back by itself (see ``updater.py``)."""
