"""jaxgan.nets"""
