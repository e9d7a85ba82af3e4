from django.db import migrations


def load(apps, schema_editor):
    from titration.protocols import PROTOCOLS

    Protocol = apps.get_model("titration", "TitrationProtocol")
    Step = apps.get_model("titration", "ProtocolStep")
    for spec in PROTOCOLS:
        protocol, _ = Protocol.objects.update_or_create(
            key=spec["key"],
            defaults={k: spec[k] for k in ("name", "source", "description")},
        )
        Step.objects.filter(protocol=protocol).delete()
        Step.objects.bulk_create(
            Step(protocol=protocol, sequence=i, dose_mg=dose, min_days=days)
            for i, (dose, days) in enumerate(spec["steps"], start=1)
        )


def unload(apps, schema_editor):
    from titration.protocols import PROTOCOLS

    apps.get_model("titration", "TitrationProtocol").objects.filter(key__in=[p["key"] for p in PROTOCOLS]).delete()


class Migration(migrations.Migration):
    dependencies = [("titration", "0001_initial")]
    operations = [migrations.RunPython(load, unload)]
