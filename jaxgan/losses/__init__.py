"""jaxgan.losses"""
