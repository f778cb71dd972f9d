from facewarden.cli.main import app

app()
