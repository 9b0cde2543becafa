from segcli.cli.main import run

run()
