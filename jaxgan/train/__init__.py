"""jaxgan.train"""
