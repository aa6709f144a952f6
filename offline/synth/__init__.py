"""The built-in synthetic landmark dataset: ``edgeemo data synth --out FILE``.

CK+-like neutral-to-apex sequences plus live-camera windows (apex held, offset to neutral, neutral), on
people made from real faces (London dev: DeBruine & Jones 2017, doi:10.6084/m9.figshare.5047666, CC BY 4.0),
moved by FACS action units, filmed by a virtual camera and normalised like real frames. Beside the dataset
goes ``<stem>.truth.json``: each emotion's units and the landmarks they move, how close the synthetic smile is
to real smiles, and how a classifier trained on the synthetic data scores real sequences.

Modules, one job each: mesh (landmark groups, distances on the mesh), faces (the real faces, the face frame),
fields (displacement fields from controls), smile_fit (AU6/AU12 fitted to real smiles), action_units (the
hand-set units), ict (units and people from ICT FaceKit's 3-D captures), unit_sources (``--action-units
hand|ict``), expressions (emotions as units), identities, timeline, render (camera and tracker), plan (who
shows what), generate (windows to dataset), truth, calibration (closeness to real faces), synthesize (the dataset file
and its truth, what ``edgeemo data synth`` runs).

Imports nothing: import the module you need (``offline.synth.synthesize``, ...).
"""
