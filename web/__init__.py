"""The Starlette app: decode, authorize, translate.  It never decides.

Empty until the service issue lands; the package exists so the layout shows the design.
"""
