"""Flower strategies in simfl's world: `--policy flower:FedAdam` (simfl.flower.adapter).
Flower is an optional extra (`pip install 'simfl[flower]'`); nothing here imports it
until a run builds a strategy."""
