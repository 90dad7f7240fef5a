"""Generation: label maps in, videos out (no training module is imported here).

- :mod:`seg2vid.generation.pipeline`   -- stage 1 then stage 2 behind one call; label-map PNGs.
- :mod:`seg2vid.generation.long_video` -- long videos by chaining chunks.
- :mod:`seg2vid.generation.editor`     -- edit a label map and regenerate its videos.
"""
