"""Training of the ranking model (torch lives here and in encoder export only).

`llmrec_stream.trainer.train.train` is the entry point; import it from there, so importing
this package stays free of torch.
"""
