"""Thingwire device firmware (MicroPython, Pico W and ESP32).

The logic lives in plain modules that take their hardware through arguments, so it runs under
CPython with fakes (firmware/tests). Only board.py and main.py import MicroPython-only modules.
"""
VERSION = "0.1.0"
