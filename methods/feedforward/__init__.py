"""feedforward"""
