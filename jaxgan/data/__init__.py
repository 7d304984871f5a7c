"""jaxgan.data"""
