# Password reset mail (issue 22): make run starts a Mailpit (bin/mailpit, built by make deps; MAILPIT in the
# Makefile) unless SMTP_URL is set.
run: $(MAILPIT)
