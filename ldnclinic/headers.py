"""What every dynamic response tells the browser besides the Content-Security-Policy (ldnclinic/csp.py).

- ``Cache-Control: no-store``: pages, API answers, calendar feeds, CSV exports and PDFs carry patient
  data, and none of it may be kept by the browser or a proxy on the way (merged with what a view set,
  e.g. ``private``). Static files never reach this middleware: WhiteNoise answers them first, with their
  own long cache lifetime, and they hold no patient data.
- ``Permissions-Policy``: the app uses no camera, microphone, location, payment, USB or sensors, so no
  page (or anything injected into one) may ask for them.
"""

from django.utils.cache import patch_cache_control

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)


class PrivacyHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        patch_cache_control(response, no_store=True)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
