"""The stages of the study, in the order of the thesis' chapter 8 (:class:`StageName`)."""
