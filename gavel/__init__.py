"""gavel"""
