from django import forms
from django.conf import settings
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from .models import TokenScope

EXPIRY_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (180, "180 days"), (365, "1 year")]


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "e.g. nightly report script"}),
        help_text="What uses this token, so you can recognise it later.",
    )
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ, widget=UnfoldAdminSelectWidget)
    days = forms.TypedChoiceField(
        label="Expires in", coerce=int, initial=90, widget=UnfoldAdminSelectWidget,
        choices=[(d, label) for d, label in EXPIRY_CHOICES if d <= settings.API_TOKEN_MAX_DAYS],
    )
