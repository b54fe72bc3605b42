"""DICOM input (issue 10): rescale, MONOCHROME1, pixel spacing, PatientOrientation, refused objects."""

from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid  # noqa: E402

from vcmeasure.dicom import anterior_side_from_orientation, read_dicom  # noqa: E402
from vcmeasure.errors import InputError  # noqa: E402
from vcmeasure.io import read_image  # noqa: E402

PHI = {"PatientName": "Doe^Jane", "PatientID": "PID-98765", "PatientBirthDate": "19500102"}


def make_dicom(path: Path, pixels: np.ndarray, *, photometric="MONOCHROME2", bits_stored=12, slope=None,
               intercept=None, spacing=None, imager_spacing=None, orientation=None, frames=None, phi=True,
               pixel_data=True) -> Path:
    """A minimal single-file DICOM image (secondary capture) carrying patient data, written with pydicom."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    if phi:
        for key, value in PHI.items():
            setattr(ds, key, value)
    if pixel_data:
        arr = np.ascontiguousarray(pixels.astype(np.uint16 if bits_stored > 8 else np.uint8))
        ds.Rows, ds.Columns = arr.shape[-2:]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = 16 if bits_stored > 8 else 8
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits_stored, bits_stored - 1, 0
        if frames:
            ds.NumberOfFrames = frames
        ds.PixelData = arr.tobytes()
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept or 0
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    if imager_spacing is not None:
        ds.ImagerPixelSpacing = list(imager_spacing)
    if orientation is not None:
        ds.PatientOrientation = list(orientation)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture()
def ramp():
    return (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 20)


def test_monochrome2_with_rescale_and_spacing(tmp_path, ramp):
    path = make_dicom(tmp_path / "a.dcm", ramp, slope=2.0, intercept=-100, spacing=(0.2, 0.3),
                      orientation=("P", "F"))
    img = read_dicom(path)
    # stored range 0..4095 rescaled to -100..8090; shifted so the nominal minimum is 0
    assert img.pixels.dtype == np.uint16 and img.pixels.shape == (12, 16)
    np.testing.assert_array_equal(img.pixels, ramp.astype(int) * 2)
    assert img.pixel_spacing_mm == pytest.approx(0.25)
    assert img.anterior_side == "left"
    np.testing.assert_array_equal(read_image(path), img.pixels)  # io dispatches DICOM here


def test_monochrome1_is_inverted_and_imager_spacing_used(tmp_path, ramp):
    path = make_dicom(tmp_path / "b", ramp, photometric="MONOCHROME1", imager_spacing=(0.15, 0.15),
                      orientation=("A", "F"))
    img = read_dicom(path)
    np.testing.assert_array_equal(img.pixels, 4095 - ramp.astype(int))
    assert img.pixels[0, 0] > img.pixels[-1, -1]  # brightest where the stored value was lowest
    assert img.pixel_spacing_mm == pytest.approx(0.15)
    assert img.anterior_side == "right"
    np.testing.assert_array_equal(read_image(path), img.pixels)  # no suffix: found by the DICM magic


def test_eight_bit_stays_uint8_without_spacing(tmp_path):
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    img = read_dicom(make_dicom(tmp_path / "c.dcm", pixels, bits_stored=8))
    assert img.pixels.dtype == np.uint8
    np.testing.assert_array_equal(img.pixels, pixels)
    assert img.pixel_spacing_mm is None and img.anterior_side == "unknown"


@pytest.mark.parametrize(("orientation", "side"), [(("P", "F"), "left"), (("A", "H"), "right"),
                                                   (("L", "F"), "unknown"), (("AF", "F"), "right"),
                                                   ("P\\F", "left"), (None, "unknown")])
def test_orientation_to_anterior_side(orientation, side):
    assert anterior_side_from_orientation(orientation) == side


def test_multiframe_refused(tmp_path):
    frames = np.zeros((2, 4, 4), np.uint16)
    path = make_dicom(tmp_path / "multi.dcm", frames, frames=2)
    with pytest.raises(InputError, match=r"multi\.dcm: multi-frame"):
        read_dicom(path)


def test_non_image_refused(tmp_path):
    path = make_dicom(tmp_path / "report.dcm", np.zeros((2, 2)), pixel_data=False)
    with pytest.raises(InputError, match=r"report\.dcm: .*no image"):
        read_dicom(path)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_garbage_refused(tmp_path):
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")
    with pytest.raises(InputError, match=r"broken\.dcm"):
        read_image(path)


def test_undecodable_pixels_refused(tmp_path):
    path = make_dicom(tmp_path / "short.dcm", np.zeros((8, 8), np.uint16))
    ds = pydicom.dcmread(path)
    ds.PixelData = b"\0" * 10  # truncated
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(InputError, match=r"short\.dcm: DICOM pixel data cannot be decoded"):
        read_dicom(path)


def test_errors_carry_no_patient_data(tmp_path):
    path = make_dicom(tmp_path / "m.dcm", np.zeros((2, 4, 4), np.uint16), frames=2)
    with pytest.raises(InputError) as err:
        read_dicom(path)
    assert not any(v.split("^")[0] in str(err.value) for v in PHI.values())
